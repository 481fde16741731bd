"""Build hooks: generate the gRPC stubs from speechsvc/v1/speechsvc.proto while the package is built, so a
wheel or a plain `pip install .` carries them (they are never edited by hand, and not committed), and copy the
shipped heads from models/ (the top of the repository) into the package as speechsvc/models/<head>/, where
speechsvc.config.shipped_heads_dir() finds them in an installed wheel. Everything else is in pyproject.toml."""

from __future__ import annotations

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
HEADS = ROOT / "models"  # the shipped heads: <head>/model.json, model.npz, MODEL_CARD.md (+ text/intent_train.tsv)


def head_files() -> list[Path]:
    return sorted(p for p in HEADS.glob("*/*") if p.is_file())


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
        if not head_files():
            raise RuntimeError(f"no shipped heads in {HEADS}")
        for path in head_files():
            target = Path(self.build_lib) / "speechsvc" / "models" / path.relative_to(HEADS)
            target.parent.mkdir(parents=True, exist_ok=True)
            self.copy_file(str(path), str(target))

    def get_source_files(self) -> list[str]:
        """The sdist carries models/ too (a wheel built from it copies the heads as above)."""
        return [*super().get_source_files(), *(str(p.relative_to(ROOT)) for p in head_files())]


setup(cmdclass={"build_py": BuildWithStubs})
