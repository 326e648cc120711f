"""The paper end to end: `reproduce` runs every stage at a budget, `plan` lists the paper's own
commands, and `report` turns the outputs into report.md with findings and their uncertainty."""
