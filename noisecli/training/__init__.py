"""Model-agnostic training parts (torchtitan-style, named by role): the loop, checkpoints, processes
(DDP) and the pieces of one step. `pretrain` is a thin user of them; any later trainer reuses them."""
