"""Sample inputs made by krbtrace's own generators (see samples/README.md and samples/MANIFEST)."""
