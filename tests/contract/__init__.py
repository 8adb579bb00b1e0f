"""Contract tests: each private SDK attribute or hook omnifs relies on still exists and behaves
as the code assumes, so an SDK upgrade that breaks one fails here, by name, before anything
subtler breaks in a mount."""
