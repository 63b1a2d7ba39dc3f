"""PEP 562 lazy attributes: a package's public names, imported on use.

`import vaekeras` (and its subpackages) imports no backend: a name is
imported from its module the first time it is read, so the apps and
anything that needs only names (the registries, `checks`) start fast.
"""

import importlib


def attach(package, names, submodules=()):
    """`(__getattr__, __dir__, __all__)` for a package's lazy names.

    Args:
        package: the package's `__name__`.
        names: `{public name: "module"}`, the module (relative to the
            package, or absolute from `vaekeras.`) holding an attribute of
            that name.
        submodules: subpackages or modules reachable as attributes.
    """
    def __getattr__(name):
        if name in names:
            target = names[name]
            if not target.startswith("vaekeras."):
                target = f"{package}.{target}"
            return getattr(importlib.import_module(target), name)
        if name in submodules:
            return importlib.import_module(f"{package}.{name}")
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__():
        return sorted({*names, *submodules})

    return __getattr__, __dir__, sorted(names)
