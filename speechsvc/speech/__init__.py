"""Speech in, text out: audio codecs and resampling, the VAD, batched Whisper recognition and its text clean-up."""
