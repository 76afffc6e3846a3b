"""What a run tells people: console lines, TensorBoard summaries and figures, evaluation reports, the machine."""
