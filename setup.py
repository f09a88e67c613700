"""Build hook: the wheel carries a copy of the repository's ``data/`` as ``zephyr_tutorial/_data``.

``data/`` stays at the top of the repository, the one place readers and authors edit the datasets; this copy
lets an installed package (``pip install "zephyr-tutorial @ git+..."`` on Colab) find them from any working
directory through ``importlib.resources`` (``zephyr_tutorial.runtime.data_dir``). Everything else about the
package is declared in ``pyproject.toml``.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

DATA = Path(__file__).resolve().parent / "data"
PACKAGED_DATA = Path("zephyr_tutorial") / "_data"  # zephyr_tutorial.runtime.PACKAGED_DATA


class build_py_with_data(build_py):
    """``build_py`` that also copies ``data/`` into the built package."""

    def _data_files(self) -> list[Path]:
        if not DATA.is_dir():
            raise FileNotFoundError(f"{DATA} is missing: a wheel without the datasets would break every notebook")
        return sorted(p for p in DATA.rglob("*") if p.is_file() and "__pycache__" not in p.parts)

    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install imports from the checkout, whose data/ runtime.data_dir() finds itself
        for source in self._data_files():
            target = Path(self.build_lib) / PACKAGED_DATA / source.relative_to(DATA)
            self.mkpath(str(target.parent))
            self.copy_file(str(source), str(target), preserve_mode=False)

    def get_outputs(self, include_bytecode=True):
        outputs = super().get_outputs(include_bytecode)
        if getattr(self, "editable_mode", False):
            return outputs
        return outputs + [str(Path(self.build_lib) / PACKAGED_DATA / p.relative_to(DATA)) for p in self._data_files()]


setup(cmdclass={"build_py": build_py_with_data})
