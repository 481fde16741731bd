// Asterisk's side of one AudioSocket connection, on the npm package `asterisk-audiosocket` (third-party, MIT):
// its AudioSocketConnection wraps any net.Socket, so wrapped around an outgoing socket it is a client. UUID frame,
// then audio: 320-byte 0x10 frames paced every 20 ms by the package's own play() (what Asterisk sends), or raw
// frames of any kind/size through its encodeFrame (newer Asterisk's 0x11-0x18, DTMF 0x03, unknown kinds), then
// the end: a hangup frame (the package's hangup()), a plain close (what Asterisk does), or a cut mid-frame.
//
//   node audiosocket_client.mjs --port P --pcm audio.s16le [--uuid U] [--kind 0x10] [--frame-bytes 320]
//        [--burst] [--delay-ms 0] [--dtmf 12# --dtmf-after 10] [--extra 0x02:00,0x42:3f3f --extra-after 5 (0: first)]
//        [--end hangup|close|cut] [--split-ms N (each frame in two writes: header, N ms, payload)]
//
// Prints one JSON line: what was sent, and every frame the server sent back (parsed by the package's FrameParser).
import net from 'node:net';
import fs from 'node:fs';
import { randomUUID } from 'node:crypto';
import { AudioSocketConnection, FrameParser, encodeFrame, FrameType, FRAME_BYTES, FRAME_MS } from 'asterisk-audiosocket';

function arg(name, dflt) {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return dflt;
  const v = process.argv[i + 1];
  return v === undefined || v.startsWith('--') ? true : v;
}

const port = Number(arg('port')), host = arg('host', '127.0.0.1');
const uuid = arg('uuid', randomUUID());
const pcm = fs.readFileSync(arg('pcm'));
const kind = Number(arg('kind', '0x10'));
const frameBytes = Number(arg('frame-bytes', String(FRAME_BYTES)));
const burst = arg('burst', false) === true;
const end = arg('end', 'close');
const dtmf = String(arg('dtmf', '')), dtmfAfter = Number(arg('dtmf-after', '0'));
const extra = String(arg('extra', '')).split(',').filter(Boolean).map((e) => {
  const [k, hex] = e.split(':');
  return encodeFrame(Number(k), Buffer.from(hex || '', 'hex'));
});
const extraAfter = Number(arg('extra-after', '0'));
const splitMs = arg('split-ms', null);  // TCP may deliver a frame's header and payload in separate segments
const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

await sleep(Number(arg('delay-ms', '0')));
const socket = net.connect({ host, port });
await new Promise((ok, bad) => { socket.once('connect', ok); socket.once('error', bad); });
socket.setNoDelay(true);  // as Asterisk does

const back = [];
const tap = new FrameParser();
socket.on('data', (chunk) => { tap.push(chunk); for (const f of tap.drain()) back.push({ type: f.type, len: f.payload.length }); });
const call = new AudioSocketConnection(socket);
call.on('error', (e) => back.push({ error: String(e.message) }));  // an unhandled 'error' would end node
const closed = new Promise((ok) => call.once('hangup', ok));

socket.write(encodeFrame(FrameType.UUID, Buffer.from(uuid.replace(/-/g, ''), 'hex')));
const frames = [];
for (let o = 0; o < pcm.length; o += frameBytes) frames.push(pcm.subarray(o, o + frameBytes));
const t0 = Date.now();
let sent = 0;
const asterisk = kind === FrameType.AUDIO && frameBytes === FRAME_BYTES && !burst && !extra.length && !dtmf
  && splitMs === null;
if (asterisk) {
  await call.play(pcm);  // the package's own 20 ms pacing
  sent = frames.length;
} else {
  if (extraAfter === 0) for (const x of extra) socket.write(x);  // before the first audio frame
  for (const [i, f] of frames.entries()) {
    if (!burst) { const due = t0 + i * FRAME_MS - Date.now(); if (due > 0) await sleep(due); }
    if (end === 'cut' && i === frames.length - 1) {
      socket.write(encodeFrame(kind, f).subarray(0, 3 + Math.floor(f.length / 3)));  // header promises more
      sent++;
      break;
    }
    if (splitMs !== null) {
      const whole = encodeFrame(kind, f);
      socket.write(whole.subarray(0, 3));  // the header alone (setNoDelay: its own segment)
      await sleep(Number(splitMs));
      socket.write(whole.subarray(3));
    } else socket.write(encodeFrame(kind, f));
    sent++;
    if (i + 1 === extraAfter) for (const x of extra) socket.write(x);
    if (dtmf && i + 1 === dtmfAfter) for (const d of dtmf) socket.write(encodeFrame(0x03, Buffer.from(d, 'ascii')));
  }
}
if (end === 'hangup') call.hangup();
else socket.end();
await Promise.race([closed, sleep(3000)]);
socket.destroy();
process.stdout.write(JSON.stringify({ uuid, frames: sent, kind, frame_bytes: frameBytes, elapsed_ms: Date.now() - t0,
  paced_by_package: asterisk, frames_from_server: back }) + '\n');
