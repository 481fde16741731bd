"""Per-call analysis on top of the transcripts: quality-inspection rules (:mod:`.qa`) and agent assist
(:mod:`.assist`). Pure logic: no I/O beyond reading their rule and knowledge files at start-up."""
