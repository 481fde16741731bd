"""Tests of speechsvc/speech: audio codecs and decoding, VAD, Whisper ASR, diarization, text of a final."""
