"""The built-in studies, one file each, named as each registers itself.

`vaekeras.studies.registry` lists them from this folder without importing
them and imports them when a study is first needed.
"""
