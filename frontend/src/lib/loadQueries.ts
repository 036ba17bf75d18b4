/** Reading a load sweep's figures from the API, kept fresh while its jobs run. */
import { useEffect } from "react";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { api, unwrap } from "../api/client";
import { events } from "../api/events";
import type { ExperimentLoad, JobLoad } from "./load";

/** Query keys of the load views. */
export const loadKeys = {
  experiment: (id: number) => ["experiment-load", id] as const,
  job: (id: number) => ["job-load", id] as const,
};

/** Every cell of an experiment's sweep with its points' figures (disabled while `enabled` is false). */
export function useExperimentLoad(id: number, enabled = true) {
  return useQuery({
    queryKey: loadKeys.experiment(id),
    enabled,
    queryFn: (): Promise<ExperimentLoad> =>
      unwrap(api.GET("/api/v1/experiments/{id}/load/", { params: { path: { id } } })),
  });
}

/** One job's sweep with each point's raw latencies (disabled while `job` is null): read on demand, it is large. */
export function useJobLoad(job: number | null) {
  return useQuery({
    queryKey: loadKeys.job(job ?? 0),
    enabled: job !== null,
    queryFn: (): Promise<JobLoad> =>
      unwrap(api.GET("/api/v1/jobs/{id}/load/", { params: { path: { id: job ?? 0 } } })),
  });
}

/** Most often the sweep's figures are read again while its jobs report (one read for a burst of updates). */
export const LOAD_REFRESH_MS = 1000;

/**
 * Read the sweep again when one of the experiment's jobs is updated (a new point, a new status). The page's
 * websocket subscription to the experiment delivers the events; updates that come in a burst cause one read.
 */
export function useLoadLiveRefresh(experiment: number, enabled = true): void {
  const qc = useQueryClient();
  useEffect(() => {
    if (!enabled) return undefined;
    let timer: ReturnType<typeof setTimeout> | null = null;
    const jobs = new Set<number>();
    const off = events.onEvent((event) => {
      if (event.type !== "job.updated" || event.data.experiment !== experiment) return;
      jobs.add(event.data.id);
      if (timer) return;
      timer = setTimeout(() => {
        timer = null;
        void qc.invalidateQueries({ queryKey: loadKeys.experiment(experiment) });
        jobs.forEach((j) => void qc.invalidateQueries({ queryKey: loadKeys.job(j) }));
        jobs.clear();
      }, LOAD_REFRESH_MS);
    });
    return () => {
      off();
      if (timer) clearTimeout(timer);
    };
  }, [qc, experiment, enabled]);
}
