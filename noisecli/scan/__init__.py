"""`noisecli scan`: how much random noise is in your corpus (detect.py finds it, scan.py is the stage)."""
