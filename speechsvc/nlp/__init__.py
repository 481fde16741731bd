"""Text analysis of final transcripts: intent, negativity (sentiment), escalation cues."""
