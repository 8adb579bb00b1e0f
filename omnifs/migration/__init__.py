"""Moving a tree of objects between stores (issue 15): the plan (:mod:`.plan`) and its file
(:mod:`.planfile`)."""
