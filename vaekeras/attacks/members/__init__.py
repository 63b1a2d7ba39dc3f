"""The built-in attacks, one file each, named as each registers itself.

`vaekeras.attacks.registry.ATTACKS` finds them by their file names and
imports them when an attack is first needed; a file added here is an
attack of vaekeras with no other edit.
"""
