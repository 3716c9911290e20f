"""The floor plan: libraries import downward only, jobs sit on top, and configs show their values.

Reads the package's imports (module level and inside functions) with ast, so a circle or a library
that reaches up into a job fails here before anyone has to untangle it.
"""

import ast
import dataclasses
import pathlib

import pytest

from conftest import REPO

PACKAGE = REPO / "ega_jax"


def _module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, pathlib.Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _imports(path: pathlib.Path, modules) -> list[tuple[str, bool]]:
    """(imported ega_jax module, imported at module level?) for every import in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = set(map(id, tree.body))
    out = []
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from ega_jax.data import build` imports the module ega_jax.data.build.
            names = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                     for a in node.names]
        for n in names:
            if n.startswith("ega_jax"):
                out.append((n, id(node) in top))
    return out


def _graph(level_only: bool):
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        deps = {m for m, at_top in _imports(path, modules) if (at_top or not level_only) and m in modules}
        # Importing ega_jax.a.b runs ega_jax/a/__init__.py too, but that is no dependency on a's siblings.
        graph[name] = deps - {name}
    return graph


def _find_cycle(graph):
    state, stack = {}, []

    def visit(n):
        state[n] = "open"
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == "open":
                return stack[stack.index(m):] + [m]
            if m not in state:
                found = visit(m)
                if found:
                    return found
        stack.pop()
        state[n] = "done"
        return None

    for n in sorted(graph):
        if n not in state:
            found = visit(n)
            if found:
                return found
    return None


def test_no_import_circles_even_through_function_level_imports():
    cycle = _find_cycle(_graph(level_only=False))
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_only_main_imports_jobs_and_every_run_lives_in_jobs():
    graph = _graph(level_only=False)
    for name, deps in graph.items():
        if name == "ega_jax.main" or name.startswith("ega_jax.jobs"):
            continue
        up = sorted(d for d in deps if d.startswith("ega_jax.jobs"))
        assert not up, f"{name} is a library but imports the job(s) {up}"
    for name, path in _modules().items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        runs = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "run"
                and [a.arg for a in n.args.args][:2] == ["config", "workdir"]]
        assert not runs or name.startswith("ega_jax.jobs."), f"{name} defines run(config, workdir): a job outside jobs/"


def test_function_level_imports_say_why():
    """An import inside a function is allowed only to keep TensorFlow or an optional dependency off a path
    that must not need it; the line above it says so."""
    for name, path in _modules().items():
        lines = path.read_text(encoding="utf-8").splitlines()
        tree = ast.parse("\n".join(lines))
        for fn in ast.walk(tree):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            body_imports = [n for n in ast.walk(fn) if isinstance(n, (ast.Import, ast.ImportFrom))]
            for node in body_imports:
                text = [lines[node.lineno - 1]] + lines[max(0, node.lineno - 4):node.lineno - 1]
                assert any("#" in t for t in text), (
                    f"{path.relative_to(REPO)}:{node.lineno}: an import inside {fn.name}() without a comment "
                    "saying why it is not at the top of the file")


def test_the_model_table_lists_peers_with_their_configs():
    from ega_jax import zoo
    assert zoo.ORDER == ("encdec", "cvae", "simple_gan", "ega")       # the paper's row order
    for name in zoo.BASELINES:
        module = zoo.get(name).module
        assert callable(module.task) and callable(module.load) and isinstance(module.NEEDS_IMAGE_VAE, bool)
        assert (REPO / "configs" / f"{name}.py").exists()
    with pytest.raises(ValueError, match="unknown comment model"):
        zoo.get("nope")


def test_configs_show_the_values_the_code_defaults_to():
    """configs/default.py writes the dataset settings out; they must equal the dataclasses that consume them."""
    from configs import default
    from ega_jax.data.build_lib import BuildConfig
    from ega_jax.data.controlled_world import WorldConfig
    data = default.data_config()
    assert data.build.to_dict() == dataclasses.asdict(BuildConfig())
    assert {k: tuple(v) if isinstance(v, list) else v for k, v in data.world.to_dict().items()} == \
        dataclasses.asdict(WorldConfig())


def test_main_job_config_is_the_paper_config_with_the_measured_changes():
    from configs import gan, gan_paper
    paper, cpu = gan_paper.get_config().to_dict(), gan.get_config().to_dict()

    def diff(a, b, prefix=""):
        out = set()
        for k in set(a) | set(b):
            if isinstance(a.get(k), dict) and isinstance(b.get(k), dict):
                out |= diff(a[k], b[k], f"{prefix}{k}.")
            elif a.get(k) != b.get(k):
                out.add(prefix + k)
        return out

    assert diff(paper, cpu) == {"stage1.text_vae.optimizer.name", "stage1.text_vae.optimizer.lr",
                                "stage1.text_vae.train.batch_size", "stage1.text_vae.train.num_steps",
                                "stage1.text_vae.kl.anneal_steps", "generate.candidates", "generate.overlap_penalty",
                                "generate.score",
                                "gan_optimizer.lr", "gan.penalty", "gan.mismatch"} | {
        f"stage1.{m}.train.{k}" for m in ("image_vae", "text_vae") for k in ("eval_every", "sample_every")}


def test_model_loss_and_train_step_code_imports_without_tensorflow():
    """An accelerator machine has jax/flax/optax/orbax only: the modules that train and generate
    (E-GA's GAN and its comment selection, the VAEs, losses, decoding, the loop, the metrics it uses)
    must import there. Blocks TensorFlow, tfds, clu, sacrebleu and scikit-learn in a fresh interpreter."""
    import subprocess
    import sys
    code = (
        "import sys, importlib.abc\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('tensorflow', 'tensorflow_datasets', 'clu', 'sacrebleu', 'sklearn'):\n"
        "            raise ImportError('blocked: ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import ega_jax.ega, ega_jax.train, ega_jax.vae, ega_jax.losses, ega_jax.decoding, ega_jax.metrics\n"
        "import ega_jax.models.wgan\n"
        "print(ega_jax.metrics.overlap({'a'}, {'a', 'b'}))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip() == str(2 / 3)
