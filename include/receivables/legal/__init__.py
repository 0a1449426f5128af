"""Legal escalation: which customers go to the legal team, with whose approval, and the life
of each case (selection, lifecycle, case files)."""
