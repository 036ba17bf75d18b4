/**
 * Results the server is still scoring. A finished job's result is stored at once; its ROUGE scores, run means and
 * statistics follow from a scoring worker a moment later (`scoring_status`: scoring → scored, or failed). Until
 * then the results API leaves the job's figures out, and the UI says they are coming.
 */
import type { ExperimentResults, ScoringStatus } from "../api/models";

/** How often (ms) a results page reads the results again while some are being scored (websocket events aside). */
export const SCORING_POLL_MS = 3000;

/** Whether a result is still being scored (its figures are on their way). */
export function isScoring(status: ScoringStatus | null | undefined): boolean {
  return status === "scoring";
}

/** The line a results page shows while some jobs are being scored, or null when none is. */
export function scoringNotice(count: number | null | undefined): string | null {
  if (!count) return null;
  const jobs = count === 1 ? "1 job" : `${count} jobs`;
  return `Scoring the results of ${jobs} (ROUGE, statistics): their figures appear here as soon as they are ready.`;
}

/** Whether cached experiment results show a job as still scoring (so an update of that job may mean it is done). */
export function awaitsScoring(results: ExperimentResults | undefined, job: number): boolean {
  return Boolean(results?.jobs.some((j) => j.job === job && isScoring(j.scoring_status)));
}
