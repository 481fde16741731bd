"""The repository itself: the docs stay true, the import graph shows the layers, the deployment files validate, the
test tree mirrors the package."""
