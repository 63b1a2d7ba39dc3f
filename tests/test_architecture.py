"""The layering README's Architecture section draws, checked on the AST.

Two rules, read from every module's syntax tree (imports anywhere in a
module, calls, comparisons), so no spelling or indirection passes them:
- only `backend` and `export` import tensorflow, jax or torch, ask
  Keras which backend runs, or compare against a backend's name (`data`
  and `input_pipeline` may import TensorFlow for `tf.data` and tfds);
- a module imports only modules of its own layer or of lower ones.
"""

import ast
import os
import pathlib

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, "vaekeras")
# `_quiet` imports TensorFlow only to drop its start-up banner.
BACKEND_MODULES = {"backend", "export", "_quiet"}
FRAMEWORKS = {"tensorflow", "jax", "jaxlib", "torch"}
BACKEND_NAMES = {"tensorflow", "jax", "torch"}
# Lowest first; the package itself (`vaekeras`) and the registries import
# nothing heavy (the public names are lazy), so they sit at the bottom.
LAYERS = (
    {
        "vaekeras", "_lazy", "_quiet", "registry", "checks", "choices",
        "backend",
        "reporting",
    },
    {"layers", "architectures", "models"},
    {"latent", "model_interface", "geometry", "scores"},
    {"attacks", "purification", "curves", "callbacks"},
    {"significance", "disentanglement", "dsprites"},
    {"defenses"},
    {
        "data", "input_pipeline", "idx", "distribution", "export", "runs",
        "backup", "train_config",
    },
    {"artifacts"},
    {"training", "evaluation", "tuning", "cli"},
    {"saved_model_evaluation"},
    {"studies"},
)


def layer_of(module):
    for index, names in enumerate(LAYERS):
        if module in names:
            return index
    raise AssertionError(f"module {module!r} is in no layer of LAYERS")


def modules():
    """`(top-level name, path)` of every module of the package."""
    for folder, _, files in os.walk(PACKAGE):
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                relative = os.path.relpath(path, PACKAGE)
                top = relative.split(os.sep)[0].removesuffix(".py")
                yield ("vaekeras" if top == "__init__" else top), path


def imports(tree):
    """`(top-level package, vaekeras module or None)` of every import."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                yield parts[0], parts[1] if len(parts) > 1 else None
        elif isinstance(node, ast.ImportFrom) and node.module:
            parts = node.module.split(".")
            if parts == ["vaekeras"]:
                for alias in node.names:
                    yield "vaekeras", alias.name
            else:
                yield parts[0], parts[1] if len(parts) > 1 else None


def backend_branches(tree):
    """Lines that ask Keras for the backend or compare with its name."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr == "backend" and (
            isinstance(node.value, ast.Attribute)
            and node.value.attr == "backend"
        ):
            yield node.lineno  # keras.backend.backend
        if isinstance(node, ast.Compare):
            for operand in [node.left, *node.comparators]:
                if isinstance(operand, ast.Constant) and (
                    operand.value in BACKEND_NAMES
                ):
                    yield node.lineno


def framework_users(sources):
    found = []
    for name, path, tree in sources:
        if name in BACKEND_MODULES:
            continue
        for package, _ in imports(tree):
            allowed = name in ("data", "input_pipeline") and package in (
                "tensorflow", "tensorflow_datasets"
            )
            if package in FRAMEWORKS and not allowed:
                found.append(f"{path}: imports {package}")
        for line in sorted(set(backend_branches(tree))):
            found.append(f"{path}:{line}: branches on the backend")
    return found


def upward_imports(sources):
    found = []
    for name, path, tree in sources:
        for package, module in imports(tree):
            if package != "vaekeras" or module is None:
                continue
            if module == name:
                continue
            if layer_of(module) > layer_of(name):
                found.append(f"{path}: imports the higher {module!r}")
    return found


@pytest.fixture(scope="module")
def sources():
    found = []
    for name, path in modules():
        with open(path) as f:
            found.append((name, path, ast.parse(f.read())))
    return found


def test_only_backend_and_export_touch_a_framework(sources):
    assert framework_users(sources) == []


def test_no_module_imports_a_higher_layer(sources):
    assert upward_imports(sources) == []


def test_models_and_layers_never_import_the_adapter(sources):
    for name, path, tree in sources:
        if name in ("models", "layers", "architectures"):
            assert ("vaekeras", "latent") not in set(imports(tree)), path


def test_the_checks_catch_what_they_are_for():
    # A module that branches through a variable, imports TensorFlow inside
    # a function and reaches up a layer: each rule must see it.
    tree = ast.parse(
        "import keras\n"
        "from vaekeras import training\n"
        "def f():\n"
        "    import tensorflow as tf\n"
        "    name = keras.backend.backend()\n"
        "    return name == 'jax'\n"
    )
    sources = [("geometry", "geometry.py", tree)]
    assert framework_users(sources) == [
        "geometry.py: imports tensorflow",
        "geometry.py:5: branches on the backend",
        "geometry.py:6: branches on the backend",
    ]
    assert upward_imports(sources) == [
        "geometry.py: imports the higher 'training'"
    ]


def module_graph():
    """`{dotted module: {dotted vaekeras modules it imports}}`, counting
    imports anywhere in a module (inside functions too)."""
    graph = {}
    for _, path in modules():
        relative = os.path.relpath(path, ROOT).removesuffix(".py")
        name = relative.replace(os.sep, ".").removesuffix(".__init__")
        with open(path) as f:
            tree = ast.parse(f.read())
        found = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                found.add(node.module)
                found |= {f"{node.module}.{a.name}" for a in node.names}
        graph[name] = found
    known = set(graph)
    # `from package import module` imports the module, not a name of the
    # package's own: the edge goes to the module alone.
    for name, targets in graph.items():
        graph[name] = {
            t for t in targets
            if not any(o.startswith(t + ".") and o in targets and o in known
                       for o in targets)
        }
    return {
        name: {t for t in targets if t in known and t != name}
        for name, targets in graph.items()
    }


def cycles(graph):
    """Every import cycle, as a list of modules (depth-first search)."""
    found, state = [], {}

    def visit(node, stack):
        state[node] = "open"
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                found.append(stack[stack.index(target):] + [target])
            elif target not in state:
                visit(target, [*stack, target])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return found


def test_no_import_cycle_even_through_a_function():
    assert cycles(module_graph()) == []


def test_the_cycle_check_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [
        ["a", "b", "c", "a"]
    ]


def test_importing_the_package_imports_no_backend():
    import subprocess
    import sys

    code = (
        "import sys, vaekeras, vaekeras.attacks, vaekeras.defenses;"
        "print(vaekeras.attacks.names(), vaekeras.defenses.names());"
        "print(any(m in sys.modules for m in "
        "('keras', 'tensorflow', 'jax', 'torch')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True,
        check=True,
    ).stdout.splitlines()
    assert "'pgd_kl'" in out[0] and "'mixup'" in out[0]
    assert out[-1] == "False"


# The style's limits: a function fits on a screen, a module has one job.
MAX_FUNCTION_LINES = 80
MAX_MODULE_LINES = 500


def long_functions(tree, limit=MAX_FUNCTION_LINES):
    """`(name, lines)` of each function longer than `limit` besides its
    docstring."""
    for node in ast.walk(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        lines = node.end_lineno - node.lineno + 1
        if ast.get_docstring(node, clean=False) is not None:
            doc = node.body[0]
            lines -= doc.end_lineno - doc.lineno + 1
        if lines > limit:
            yield node.name, lines


def test_no_function_over_a_screen_and_no_module_over_its_limit(sources):
    apps = [
        os.path.join(ROOT, "apps", name)
        for name in sorted(os.listdir(os.path.join(ROOT, "apps")))
        if name.endswith(".py")
    ]
    trees = [(path, tree) for _, path, tree in sources] + [
        (path, ast.parse(pathlib.Path(path).read_text())) for path in apps
    ]
    too_long = [
        (os.path.relpath(path, ROOT), name, lines)
        for path, tree in trees for name, lines in long_functions(tree)
    ]
    assert too_long == []
    assert [
        os.path.relpath(path, ROOT) for path, _ in trees
        if len(pathlib.Path(path).read_text().splitlines())
        >= MAX_MODULE_LINES
    ] == []


def test_the_length_check_counts_code_not_docstrings():
    body = "\n".join(f"    x{i} = {i}" for i in range(80))  # + def line
    doc = '    """' + "\n" * 30 + '    """\n'
    long_code = ast.parse(f"def f():\n{doc}{body}\n")
    long_doc = ast.parse(f"def g():\n{doc}" + body.split("\n", 1)[1] + "\n")
    assert list(long_functions(long_code)) == [("f", 81)]
    assert list(long_functions(long_doc)) == []
