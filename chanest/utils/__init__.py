"""Plumbing every stage shares: reading and checking ``params.yaml`` (:mod:`.params`), atomic file
writes (:mod:`.io`) and the stage entry point with its logging and clean failures (:mod:`.cli`)."""
