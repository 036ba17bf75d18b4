import { lazy, Suspense } from "react";
import { Navigate, Route, Routes } from "react-router-dom";
import { useMe } from "./api/queries";
import { ErrorBox, Spinner } from "./components/ui";
import { Layout } from "./components/Layout";
import { LoginPage, NoAccessPage } from "./pages/LoginPage";
import { hasAccess } from "./lib/permissions";
import { AgentsPage } from "./pages/AgentsPage";
import { ExperimentsPage } from "./pages/ExperimentsPage";
import { NewExperimentPage } from "./pages/NewExperimentPage";
import { ExperimentDetailPage } from "./pages/ExperimentDetailPage";

// The results page carries the charting library: loaded when first opened, not with the rest of the UI.
const ResultsPage = lazy(() => import("./pages/ResultsPage").then((m) => ({ default: m.ResultsPage })));

export function App() {
  const me = useMe();
  if (me.isPending) return <Spinner label="Connecting to the server…" />;
  if (me.isError) return <ErrorBox error={me.error} title="The server cannot be reached" onRetry={() => void me.refetch()} />;
  if (!me.data) return <LoginPage />;
  if (!hasAccess(me.data)) return <NoAccessPage user={me.data} />;
  return (
    <Routes>
      <Route element={<Layout user={me.data} />}>
        <Route index element={<Navigate to="/experiments" replace />} />
        <Route path="agents" element={<AgentsPage />} />
        <Route path="agents/:agentId" element={<AgentsPage />} />
        <Route path="experiments" element={<ExperimentsPage />} />
        <Route path="experiments/new" element={<NewExperimentPage />} />
        <Route path="experiments/:id" element={<ExperimentDetailPage />} />
        <Route path="experiments/:id/results" element={
          <Suspense fallback={<Spinner label="Loading the results view…" />}><ResultsPage /></Suspense>} />
        <Route path="*" element={<ErrorBox title="Page not found" error="There is no page at this address." />} />
      </Route>
    </Routes>
  );
}
