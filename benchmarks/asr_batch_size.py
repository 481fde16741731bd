"""ASR throughput against batch size, window floor and threads; the harness lives in
``speechsvc.evaluation.bench_batch`` so that ``speechsvc bench batch`` runs it too.

    python benchmarks/asr_batch_size.py --batch 1 2 4 8 --floors 10 5
"""

from speechsvc.evaluation.bench_batch import main

if __name__ == "__main__":
    main()
