"""Registries: the one way attacks, defenses and studies enter vaekeras.

A `Registry` maps names to entries. The built-in entries live one file
each in a folder of the package, the file named as the entry is
registered, so their names are known from the folder without importing
anything (the apps check flags against them before a backend loads); the
files are imported the first time an entry itself is needed. A user's
entry is registered by calling the registry's `register` decorator from
the user's own module, which must be imported before the entry is used.

Pure Python: importing this module imports no backend.
"""

import ast
import importlib
import importlib.util
import os
import pkgutil
import sys
import zlib

_ROOT = os.path.dirname(os.path.abspath(__file__))


class Registry:
    """Entries of one kind by name, built-ins discovered from a folder.

    Args:
        kind: what an entry is, in messages (`"attack"`, `"defense"`).
        package: the dotted package of the built-in entries' files.
    """

    def __init__(self, kind, package):
        self.kind = kind
        self.package = package
        self._folder = os.path.join(_ROOT, *package.split(".")[1:])
        self._entries = {}
        self._loading = False
        self._loaded = False

    def builtin_names(self):
        """The built-in entries' names, from their files; imports nothing."""
        return tuple(sorted(
            module.name for module in pkgutil.iter_modules([self._folder])
            if not module.name.startswith("_")
        ))

    def names(self):
        """Every name: the built-ins, then those registered since, in order.

        Imports nothing, so it is cheap; a user's entries appear once the
        module that registers them is imported.
        """
        builtin = self.builtin_names()
        return builtin + tuple(n for n in self._entries if n not in builtin)

    def add(self, name, entry, origin):
        """Registers `entry` under `name`.

        Args:
            name: a Python identifier (it becomes a flag value and a key).
            entry: what `get(name)` returns.
            origin: `module.qualname` of what defined it: registering the
                same origin again (a reloaded module, a notebook cell run
                twice) replaces the entry; another origin is refused.

        Raises:
            ValueError: for a bad name or a name taken by another origin.
        """
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(
                f"Invalid {self.kind} name: expected a Python identifier "
                f"(letters, digits, underscores). Received: {name!r}"
            )
        taken = self._entries.get(name)
        if taken is not None and taken[1] != origin:
            raise ValueError(
                f"The {self.kind} name {name!r} is taken by {taken[1]}; "
                f"choose another name for {origin}."
            )
        self._entries[name] = (entry, origin)

    def registered(self):
        """`{name: entry}` registered so far; imports nothing."""
        return {name: entry for name, (entry, _) in self._entries.items()}

    def load(self):
        """Imports every built-in entry's file (once)."""
        if self._loaded or self._loading:
            return
        self._loading = True
        try:
            for name in self.builtin_names():
                importlib.import_module(f"{self.package}.{name}")
                if name not in self._entries:
                    raise ImportError(
                        f"{self.package}.{name} registers no {self.kind} "
                        f"named {name!r}: a built-in {self.kind}'s file is "
                        "named as it registers itself."
                    )
            self._loaded = True
        finally:
            self._loading = False

    def get(self, name, argument=None):
        """The entry called `name`.

        Args:
            name: a registered name.
            argument: the argument or flag to name in the error.

        Raises:
            ValueError: for an unknown name, listing the known ones.
        """
        self.load()
        if not isinstance(name, str) or name not in self._entries:
            argument = argument or self.kind
            raise ValueError(
                f"Invalid value received for argument `{argument}`: "
                f"expected one of {list(self.names())} (a {self.kind} of "
                "your own is registered by importing the module that "
                f"registers it). Received: {argument}={name!r}"
            )
        return self._entries[name][0]

    def declaration(self, name, variable, light_modules):
        """A module-level value of a built-in entry's file, not imported.

        Runs the file's top-level imports of `light_modules` and its
        assignments, in order, up to the one that binds `variable`, and
        returns that value; assignments that need anything else are
        skipped. So what a built-in declares at the top of its file (a
        defense's options) is known, like its name, before a backend
        loads. A test compares it with the imported entry's.

        Args:
            name: a built-in entry's name.
            variable: the module-level name to read.
            light_modules: dotted modules that import no backend.

        Raises:
            LookupError: when the file binds no `variable`.
        """
        path = os.path.join(self._folder, f"{name}.py")
        with open(path, encoding="utf-8") as file:
            tree = ast.parse(file.read(), path)
        namespace = {}
        for node in tree.body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                if _imports_only(node, light_modules):
                    _run(node, path, namespace)
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                try:
                    _run(node, path, namespace)
                except NameError:
                    continue  # needs a module this reading does not import
                if variable in namespace:
                    return namespace[variable]
        raise LookupError(f"{path} binds no module-level {variable!r}")

    def entries(self):
        """`{name: entry}` for every entry, built-ins first."""
        self.load()
        return {name: self._entries[name][0] for name in self.names()}


def _imports_only(node, modules):
    """Whether an import statement imports nothing but `modules`."""
    if isinstance(node, ast.Import):
        return all(alias.name in modules for alias in node.names)
    return all(
        node.module in modules or f"{node.module}.{alias.name}" in modules
        for alias in node.names
    )


def _run(node, path, namespace):
    exec(compile(ast.Module([node], []), path, "exec"), namespace)


def import_plugins(modules):
    """Imports a user's modules, which register attacks, defenses, studies.

    Args:
        modules: dotted module names (importable from `sys.path`) or paths
            of `.py` files.

    Returns:
        The imported modules.

    Raises:
        ValueError: naming a module that cannot be found.
    """
    imported = []
    for module in modules:
        if module.endswith(".py"):
            if not os.path.isfile(module):
                raise ValueError(
                    "Invalid value received for argument `plugins`: no "
                    f"such file {module!r}. Received: plugins={module!r}"
                )
            name = os.path.splitext(os.path.basename(module))[0]
            spec = importlib.util.spec_from_file_location(name, module)
            loaded = importlib.util.module_from_spec(spec)
            sys.modules[name] = loaded
            spec.loader.exec_module(loaded)
        else:
            try:
                loaded = importlib.import_module(module)
            except ModuleNotFoundError as error:
                if not module.startswith(error.name or "\0"):
                    raise  # the plugin's own import failed
                raise ValueError(
                    "Invalid value received for argument `plugins`: "
                    f"{error}. Received: plugins={module!r}"
                ) from None
        imported.append(loaded)
    return imported


def seed_stream(name):
    """A stable offset in [1, 10**6) for the random draws of `name`.

    Adding it to a run's seed gives each registered entry its own random
    stream, the same in every process and Python version.
    """
    return 1 + zlib.crc32(name.encode()) % (10**6 - 1)


def origin_of(obj):
    """`module.qualname` of a function or class (see `Registry.add`)."""
    return f"{obj.__module__}.{obj.__qualname__}"
