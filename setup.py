"""Build hook: generate the gRPC stubs from speechsvc/v1/speechsvc.proto while the package is built, so a
wheel or a plain `pip install .` carries them (they are never edited by hand, and not committed). Everything
else is in pyproject.toml."""

from __future__ import annotations

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


class BuildWithStubs(build_py):
    def run(self) -> None:
        from grpc_tools import protoc

        proto = "speechsvc/v1/speechsvc.proto"
        include = Path(protoc.__file__).parent / "_proto"  # google/protobuf/*.proto
        args = ["protoc", f"-I{ROOT}", f"-I{include}", f"--python_out={ROOT}", f"--pyi_out={ROOT}",
                f"--grpc_python_out={ROOT}", str(ROOT / proto)]
        if protoc.main(args) != 0:
            raise RuntimeError(f"protoc failed on {proto}")
        super().run()


setup(cmdclass={"build_py": BuildWithStubs})
