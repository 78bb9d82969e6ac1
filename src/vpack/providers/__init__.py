"""Video sources: the one interface, the registry, the shared kit and one package per provider."""
