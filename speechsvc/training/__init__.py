"""Tools that teach the service: the operator's intent model (``speechsvc train intent``: ``intent_train``) and the
sheets of utterances to label from batch reports (``intents export``: ``intent_data``). Imported by those commands
only, never at start-up."""
