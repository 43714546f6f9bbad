"""movierec: sequential movie recommenders trained, evaluated and shipped by a TFX pipeline.

The repository keeps one folder per stage at the top level (data/, evaluation/, models/, components/,
pipeline/, serving/, cli/) and installs each as `movierec.<folder>` under the single import package
`movierec` (whose own folder holds only what every stage shares: constants and storage), so users
write `from movierec.models import GRU4Rec` and nothing named `models` lands in site-packages.
"""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent

# import name -> folder in this repository
STAGE_FOLDERS = {
    "movierec": "movierec",
    "movierec.data": "data",
    "movierec.evaluation": "evaluation",
    "movierec.models": "models",
    "movierec.components": "components",
    "movierec.pipeline": "pipeline",
    "movierec.serving": "serving",
    "movierec.cli": "cli",
}


def _packages() -> tuple[list[str], dict[str, str]]:
    packages, package_dir = [], {}
    for name, folder in STAGE_FOLDERS.items():
        package_dir[name] = folder
        packages.append(name)
        for sub in find_packages(folder):
            packages.append(f"{name}.{sub}")
            package_dir[f"{name}.{sub}"] = f"{folder}/{sub.replace('.', '/')}"
    return packages, package_dir


def _requirements() -> list[str]:
    lines = (HERE / "requirements" / "runtime.txt").read_text().splitlines()
    runtime = []
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if (
            line
            and not line.startswith("pytest")
            and line.split(">")[0] not in {"ruff", "pre-commit", "setuptools"}
        ):
            runtime.append(line)
    return runtime


packages, package_dir = _packages()

setup(
    name="movierec",
    version="0.1.0",
    description="TFX pipeline for sequential movie recommenders (GRU4Rec, RRN, LSTM+CNN, IARN, LSIC)",
    long_description=(HERE / "README.md").read_text(encoding="utf-8")
    if (HERE / "README.md").exists()
    else "",
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.11,<3.14",
    packages=packages,
    package_dir=package_dir,
    package_data={"movierec.pipeline": ["schema/*.pbtxt"]},
    install_requires=_requirements(),
    entry_points={"console_scripts": ["movierec = movierec.cli:main"]},
)
