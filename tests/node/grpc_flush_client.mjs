// A gRPC StreamCall from @grpc/grpc-js (the Node gRPC library, third-party) with the service loaded from the
// proto by @grpc/proto-loader: config, audio, Control FLUSH, wait for the final it brings, more audio, STOP.
//
//   node grpc_flush_client.mjs --port P --proto speechsvc/v1/speechsvc.proto --pcm1 a.s16le --pcm2 b.s16le
//        [--rate 8000]
//
// Prints one JSON line: every event (its oneof's name and fields) and the final status.
import fs from 'node:fs';
import path from 'node:path';
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';

function arg(name, dflt) {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? dflt : process.argv[i + 1];
}

const proto = path.resolve(arg('proto'));
const root = path.resolve(path.dirname(proto), '..', '..');  // the repository: imports are relative to it
const definition = protoLoader.loadSync(path.relative(root, proto), {
  includeDirs: [root], keepCase: true, longs: Number, enums: String, defaults: false, oneofs: true,
});
const { Speech } = grpc.loadPackageDefinition(definition).speechsvc.v1;
const client = new Speech(`127.0.0.1:${arg('port')}`, grpc.credentials.createInsecure());

const events = [];
const call = client.StreamCall();
let gotFinal;
const firstFinal = new Promise((ok) => { gotFinal = ok; });
call.on('data', (m) => {
  events.push({ kind: m.event, ...m[m.event] });
  if (m.event === 'final') gotFinal();
});
const done = new Promise((ok) => call.on('status', (s) => ok({ code: s.code, details: s.details })));
call.on('error', () => {});  // the status carries it

const rate = Number(arg('rate', '8000'));
call.write({ config: { call_id: arg('call-id', `grpc-js-${Date.now()}`), encoding: 'PCM16', sample_rate: rate } });
const send = (file) => {
  const pcm = fs.readFileSync(file);
  const step = rate / 50 * 2;  // 20 ms
  for (let o = 0; o < pcm.length; o += step) call.write({ audio: pcm.subarray(o, o + step) });
};
send(arg('pcm1'));
call.write({ control: { action: 'FLUSH' } });
const flushed = await Promise.race([firstFinal.then(() => true), new Promise((ok) => setTimeout(() => ok(false), 10000))]);
send(arg('pcm2'));
call.write({ control: { action: 'STOP' } });
call.end();
const status = await done;
client.close();
process.stdout.write(JSON.stringify({ flushed, status, events }) + '\n');
