"""Why: the paper's theory (§3.3, Appendix B): Proposition 1, f(ε), k from checkpoints, Lemma 1."""
