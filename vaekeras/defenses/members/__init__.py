"""The built-in defenses, one file each, named as each registers itself.

`vaekeras.defenses.registry.DEFENSES` finds them by their file names and
imports them when a defense is first needed; a file added here is a
defense of vaekeras with no other edit.
"""
