/** TanStack Query hooks over the REST API, kept fresh by websocket events. */
import { useEffect, useState } from "react";
import { useMutation, useQuery, useQueryClient, type QueryClient } from "@tanstack/react-query";
import { api, PAGE_LIMIT, unwrap } from "./client";
import { events, type ServerEvent, type SocketState, type Subscription } from "./events";
import { keepCanManage, permissionsOf } from "../lib/permissions";
import { awaitsScoring, SCORING_POLL_MS } from "../lib/scoring";
import type { Agent, Experiment, ExperimentRequest, ExperimentResults, Job, Plan, SessionUser } from "./models";

/** Query keys of the cache (websocket events update these entries). */
export const keys = {
  me: ["me"] as const,
  catalog: ["catalog"] as const,
  agents: ["agents"] as const,
  experiments: ["experiments"] as const,
  experiment: (id: number) => ["experiment", id] as const,
  jobs: (experiment: number) => ["jobs", experiment] as const,
  job: (id: number) => ["job", id] as const,
  results: (experiment: number) => ["results", experiment] as const,
  comparison: (experiment: number, metric: string) => ["comparison", experiment, metric] as const,
  jobResults: (job: number) => ["job-results", job] as const,
};

// --- session ------------------------------------------------------------------------------------

/** The logged-in user with role and permissions, or null (401). */
export function useMe() {
  return useQuery({
    queryKey: keys.me,
    queryFn: async (): Promise<SessionUser | null> => {
      const result = await api.GET("/api/v1/auth/session/");
      if (result.response.status === 401) return null;
      return unwrap(Promise.resolve(result));
    },
    staleTime: 60_000,
    retry: false,
  });
}

/** Log in with a username and password (sets the session cookie). */
export function useLogin() {
  const qc = useQueryClient();
  return useMutation({
    mutationFn: async (body: { username: string; password: string }) => {
      // Make sure the CSRF cookie exists before the first write.
      await api.GET("/api/v1/auth/session/");
      return unwrap(api.POST("/api/v1/auth/session/", { body }));
    },
    onSuccess: (user) => qc.setQueryData(keys.me, user),
  });
}

/** What the logged-in user may do (no permission while the user is unknown). */
export function usePermissions() {
  return permissionsOf(useMe().data);
}

/** Log out, close the websocket and clear the cache. */
export function useLogout() {
  const qc = useQueryClient();
  return useMutation({
    mutationFn: () => unwrap(api.DELETE("/api/v1/auth/session/")),
    onSuccess: () => {
      events.close();
      // The user first (the app, observing it, shows the login form), then everything the user had loaded. Clearing
      // the whole cache would drop the observed entry too, and the app would not notice the logout.
      qc.setQueryData(keys.me, null);
      qc.removeQueries({ predicate: (query) => query.queryKey[0] !== keys.me[0] });
    },
  });
}

// --- live events --------------------------------------------------------------------------------

function upsert<T extends { id: string | number }>(list: T[] | undefined, item: T): T[] | undefined {
  if (!list) return list;
  const i = list.findIndex((x) => x.id === item.id);
  if (i < 0) return [...list, item];
  const next = list.slice();
  next[i] = item;
  return next;
}

/** {@link upsert} for experiments and jobs: an update without `can_manage` keeps the cached one's. */
function upsertManaged<T extends { id: string | number; can_manage?: boolean }>(
  list: T[] | undefined, item: T): T[] | undefined {
  return upsert(list, keepCanManage(list?.find((x) => x.id === item.id), item));
}

/** Apply one websocket event to the query cache (the payloads are the REST serializers' JSON). */
export function applyEvent(qc: QueryClient, event: ServerEvent): void {
  switch (event.type) {
    case "agent.updated":
      qc.setQueryData<Agent[]>(keys.agents, (list) => upsert(list, event.data));
      break;
    case "experiment.updated": {
      const exp = event.data;
      const previous = qc.getQueryData<Experiment>(keys.experiment(exp.id));
      qc.setQueryData<Experiment>(keys.experiment(exp.id), (old) => keepCanManage(old, { ...old, ...exp }));
      qc.setQueryData<Experiment[]>(keys.experiments, (list) => upsertManaged(list, exp));
      if (previous && previous.status !== exp.status) {
        void qc.invalidateQueries({ queryKey: keys.results(exp.id) });
        void qc.invalidateQueries({ queryKey: ["comparison", exp.id] });
      }
      break;
    }
    case "job.updated": {
      const job = event.data;
      const before = qc.getQueryData<Job[]>(keys.jobs(job.experiment))?.find((j) => j.id === job.id);
      qc.setQueryData<Job[]>(keys.jobs(job.experiment), (list) => upsertManaged(list, job));
      if (qc.getQueryData(keys.job(job.id)) && before?.updated_at !== job.updated_at &&
          before?.status !== job.status) {
        void qc.invalidateQueries({ queryKey: keys.job(job.id) });
      }
      // A new status, or a finished job's results being scored (the scoring worker announces the job when done).
      const scored = awaitsScoring(qc.getQueryData<ExperimentResults>(keys.results(job.experiment)), job.id);
      if ((before && before.status !== job.status) || scored) {
        void qc.invalidateQueries({ queryKey: keys.results(job.experiment) });
        void qc.invalidateQueries({ queryKey: ["comparison", job.experiment] });
        void qc.invalidateQueries({ queryKey: keys.jobResults(job.id) });
      }
      break;
    }
    default:
      break;
  }
}

/** Keep a websocket subscription open while the component is mounted. */
export function useLive(sub: Subscription | null): void {
  const qc = useQueryClient();
  const key = sub ? JSON.stringify(sub) : "";
  useEffect(() => {
    if (!key) return undefined;
    const off = events.onEvent((e) => applyEvent(qc, e));
    const unsubscribe = events.subscribe(JSON.parse(key) as Subscription);
    return () => {
      unsubscribe();
      off();
    };
  }, [qc, key]);
}

/** State of the live connection (for the indicator in the header). */
export function useSocketState(): { state: SocketState; error: string | null } {
  const [state, setState] = useState<SocketState>(events.state);
  useEffect(() => events.onState(setState), []);
  return { state, error: state === "open" ? null : events.lastError };
}

// --- agents -------------------------------------------------------------------------------------

/** Every registered agent. */
export function useAgents() {
  return useQuery({
    queryKey: keys.agents,
    queryFn: async () =>
      (await unwrap(api.GET("/api/v1/agents/", { params: { query: { limit: PAGE_LIMIT } } }))).results,
  });
}

/** Register, edit, refresh (re-detect), activate, deactivate and remove agents. */
export function useAgentMutations() {
  const qc = useQueryClient();
  const refresh = () => qc.invalidateQueries({ queryKey: keys.agents });
  const put = (agent: Agent) => qc.setQueryData<Agent[]>(keys.agents, (list) => upsert(list, agent));
  return {
    register: useMutation({
      mutationFn: (body: { url: string; token: string; name?: string; labels?: string[];
        cost_per_hour?: string | null }) => unwrap(api.POST("/api/v1/agents/", { body })),
      onSuccess: (agent) => { put(agent); void refresh(); },
    }),
    update: useMutation({
      mutationFn: ({ id, ...body }: { id: string; name?: string; labels?: string[]; cost_per_hour?: string | null }) =>
        unwrap(api.PATCH("/api/v1/agents/{id}/", { params: { path: { id } }, body })),
      onSuccess: (agent) => put(agent),
    }),
    deactivate: useMutation({
      mutationFn: (id: string) => unwrap(api.POST("/api/v1/agents/{id}/deactivate/", { params: { path: { id } } })),
      onSuccess: (agent) => put(agent),
    }),
    refreshCapabilities: useMutation({
      mutationFn: (id: string) => unwrap(api.POST("/api/v1/agents/{id}/refresh/", { params: { path: { id } } })),
      onSuccess: (agent) => put(agent),
    }),
    activate: useMutation({
      mutationFn: (id: string) => unwrap(api.POST("/api/v1/agents/{id}/activate/", { params: { path: { id } } })),
      onSuccess: (agent) => put(agent),
    }),
    remove: useMutation({
      mutationFn: (id: string) => unwrap(api.DELETE("/api/v1/agents/{id}/", { params: { path: { id } } })),
      onSuccess: (_d, id) => {
        qc.setQueryData<Agent[]>(keys.agents, (list) => list?.filter((a) => a.id !== id));
        void refresh();
      },
    }),
  };
}

// --- catalog ------------------------------------------------------------------------------------

/** What experiments may use: tasks, runtimes (which tasks each can run), models and metrics. */
export function useCatalog() {
  return useQuery({
    queryKey: keys.catalog,
    queryFn: () => unwrap(api.GET("/api/v1/catalog/")),
    staleTime: 5 * 60_000,
  });
}

// --- experiments and jobs -----------------------------------------------------------------------

/** Experiments, newest first. */
export function useExperiments() {
  return useQuery({
    queryKey: keys.experiments,
    queryFn: async () =>
      (await unwrap(api.GET("/api/v1/experiments/", {
        params: { query: { limit: PAGE_LIMIT, ordering: "-created_at" } },
      }))).results,
  });
}

/** One experiment. */
export function useExperiment(id: number) {
  return useQuery({
    queryKey: keys.experiment(id),
    queryFn: () => unwrap(api.GET("/api/v1/experiments/{id}/", { params: { path: { id } } })),
  });
}

/** An experiment's jobs, in id order. */
export function useJobs(experiment: number) {
  return useQuery({
    queryKey: keys.jobs(experiment),
    queryFn: async () =>
      (await unwrap(api.GET("/api/v1/jobs/", {
        params: { query: { experiment, limit: PAGE_LIMIT, ordering: "id" } },
      }))).results,
  });
}

/** One job with its attempts and transition log (disabled while `id` is null). */
export function useJob(id: number | null) {
  return useQuery({
    queryKey: keys.job(id ?? 0),
    enabled: id !== null,
    queryFn: () => unwrap(api.GET("/api/v1/jobs/{id}/", { params: { path: { id: id ?? 0 } } })),
  });
}

/** Create an experiment (the server plans its jobs at once). */
export function useCreateExperiment() {
  const qc = useQueryClient();
  return useMutation({
    mutationFn: (body: ExperimentRequest) => unwrap(api.POST("/api/v1/experiments/", { body })),
    onSuccess: (exp) => {
      qc.setQueryData(keys.experiment(exp.id), exp);
      void qc.invalidateQueries({ queryKey: keys.experiments });
    },
  });
}

/** Dry-run plan of an experiment being edited. */
export function fetchPlan(body: ExperimentRequest): Promise<Plan> {
  return unwrap(api.POST("/api/v1/experiments/plan/", { body }));
}

/** Rename, cancel or delete an experiment; cancel or retry one of its jobs. */
export function useExperimentActions(experiment: number) {
  const qc = useQueryClient();
  const putJob = (job: Job) => qc.setQueryData<Job[]>(keys.jobs(experiment), (list) => upsertManaged(list, job));
  const putExperiment = (exp: Experiment) => {
    qc.setQueryData(keys.experiment(experiment), exp);
    qc.setQueryData<Experiment[]>(keys.experiments, (list) => upsertManaged(list, exp));
  };
  return {
    rename: useMutation({
      mutationFn: (body: { name: string; description: string }) =>
        unwrap(api.PATCH("/api/v1/experiments/{id}/", { params: { path: { id: experiment } }, body })),
      onSuccess: putExperiment,
    }),
    cancel: useMutation({
      mutationFn: () =>
        unwrap(api.POST("/api/v1/experiments/{id}/cancel/", { params: { path: { id: experiment } } })),
      onSuccess: (exp) => {
        putExperiment(exp);
        void qc.invalidateQueries({ queryKey: keys.jobs(experiment) });
      },
    }),
    remove: useMutation({
      mutationFn: () => unwrap(api.DELETE("/api/v1/experiments/{id}/", { params: { path: { id: experiment } } })),
      // The page navigates away (its own onSuccess); the deleted experiment's entries expire unobserved.
      onSuccess: () => {
        qc.setQueryData<Experiment[]>(keys.experiments, (list) => list?.filter((e) => e.id !== experiment));
        void qc.invalidateQueries({ queryKey: keys.experiments });
      },
    }),
    cancelJob: useMutation({
      mutationFn: (id: number) => unwrap(api.POST("/api/v1/jobs/{id}/cancel/", { params: { path: { id } } })),
      onSuccess: (job) => { putJob(job); void qc.invalidateQueries({ queryKey: keys.job(job.id) }); },
    }),
    retryJob: useMutation({
      mutationFn: (id: number) => unwrap(api.POST("/api/v1/jobs/{id}/retry/", { params: { path: { id } } })),
      onSuccess: (job) => { putJob(job); void qc.invalidateQueries({ queryKey: keys.job(job.id) }); },
    }),
  };
}

// --- results ------------------------------------------------------------------------------------

/**
 * An experiment's aggregated results (statistics, efficiency, metric descriptions). While some jobs' results are
 * being scored they are read again every few seconds, in case no websocket event says so.
 */
export function useExperimentResults(id: number) {
  return useQuery({
    queryKey: keys.results(id),
    queryFn: () => unwrap(api.GET("/api/v1/experiments/{id}/results/", { params: { path: { id } } })),
    refetchInterval: (query) => (query.state.data?.scoring ? SCORING_POLL_MS : false),
  });
}

/** The comparison matrix of one metric (canonical or a hardware benchmark figure). */
export function useComparison(id: number, metric: string) {
  return useQuery({
    queryKey: keys.comparison(id, metric),
    enabled: metric !== "",
    queryFn: () =>
      unwrap(api.GET("/api/v1/experiments/{id}/comparison/", { params: { path: { id }, query: { metric } } })),
  });
}

/** One job's runs (metrics, telemetry, samples), efficiency and execution facts. */
export function useJobResults(job: number | null) {
  return useQuery({
    queryKey: keys.jobResults(job ?? 0),
    enabled: job !== null,
    queryFn: () => unwrap(api.GET("/api/v1/jobs/{id}/results/", { params: { path: { id: job ?? 0 } } })),
  });
}
