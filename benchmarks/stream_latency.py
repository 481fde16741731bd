"""Streaming latency and capacity benchmark; the harness lives in ``speechsvc.evaluation.bench_stream`` so that
``speechsvc bench stream`` runs it too. See that module for what is measured and how.

    python benchmarks/stream_latency.py --sweep --target 1.5
"""

from speechsvc.evaluation.bench_stream import main

if __name__ == "__main__":
    main()
