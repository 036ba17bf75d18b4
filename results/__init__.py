"""Results app: per-run results, per-job statistics, ROUGE post-processing, comparison and export."""
