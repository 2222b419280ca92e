"""Everything a person runs, in two rooms: ``tools.ops`` (what operators run; ships to instances)
and ``tools.lab`` (what develops and proves modfleet; never ships).  See ARCHITECTURE.md.
"""
