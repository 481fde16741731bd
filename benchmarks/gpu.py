"""The GPU capacity run (batch throughput + calls held with partials); the harness lives in
``speechsvc.evaluation.bench_gpu`` so that ``speechsvc bench gpu`` runs it too.

    python benchmarks/gpu.py            # on a machine with an NVIDIA GPU, < 8 minutes
"""

from speechsvc.evaluation.bench_gpu import main

if __name__ == "__main__":
    main()
