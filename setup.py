"""Build step that puts the lessons into the wheel as virtkit/lessons/.

All metadata lives in pyproject.toml; this file only extends build_py.

The lessons stay at the top of the repository (notebooks/, exercises/) so authors edit
them in place and `virtkit lab` opens them there in a checkout. A wheel has no place for
top-level folders that a program can find again (data-files is deprecated and lands
outside the package), so build_py copies them into the built package. Which files are
lessons is decided by virtkit/lab.py (lesson_files), loaded here by path so the build
and `virtkit lab` agree; it leaves out the instructor sources in exercises/source/.

An editable install (`pip install -e .`) copies nothing: `virtkit lab` finds the
checkout's folders. An sdist carries the folders through MANIFEST.in.
"""

import importlib.util
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


def _load_lab():
    spec = importlib.util.spec_from_file_location("_virtkit_lab", ROOT / "virtkit" / "lab.py")
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up in sys.modules while the module runs.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


class build_py_with_lessons(build_py):
    """build_py, plus the lesson files copied to <build_lib>/virtkit/lessons/."""

    def run(self):
        super().run()
        if self.editable_mode:
            return
        for source, target in self._lesson_targets():
            self.mkpath(str(target.parent))
            self.copy_file(str(source), str(target))

    def get_outputs(self, include_bytecode=True):
        outputs = super().get_outputs(include_bytecode)
        if self.editable_mode:
            return outputs
        return outputs + [str(target) for _, target in self._lesson_targets()]

    def _lesson_targets(self):
        lab = _load_lab()
        if not (ROOT / lab.LESSON_FOLDERS[0]).is_dir():
            raise RuntimeError(
                f"{ROOT / lab.LESSON_FOLDERS[0]} is missing, so the wheel would ship without "
                "lessons; build from a checkout, or from an sdist made with MANIFEST.in"
            )
        lessons = Path(self.build_lib) / "virtkit" / "lessons"
        return [(ROOT / relative, lessons / relative) for relative in lab.lesson_files(ROOT)]


setup(cmdclass={"build_py": build_py_with_lessons})
