import { afterEach, describe, expect, it } from "vitest";
import { cleanup, render, screen, within } from "@testing-library/react";
import { agentUrlText, HeartbeatAlert, HeartbeatWarning, ModeBadge, PULL_URL_TEXT } from "./AgentState";

const ERROR = "heartbeats do not arrive; the agent answers the server directly and reports its calls to "
  + "http://10.0.0.2:8000 failing: ConnectError: [Errno 111] Connection refused";
const SINCE = "2026-11-30T05:18:18Z";

describe("agent state", () => {
  afterEach(cleanup);
  it("shows the mode as a pill with its meaning", () => {
    render(<><ModeBadge mode="push" /><ModeBadge mode="pull" /></>);
    expect(screen.getByText("pull")).toHaveAttribute("data-mode", "pull");
    expect(screen.getByText("pull")).toHaveAttribute("title", "the agent opens no port and asks the server for work");
    expect(screen.getByText("push")).toHaveAttribute("title", "the server calls the agent's API");
  });
  it("gives the URL of a push agent and says why a pull agent has none", () => {
    expect(agentUrlText({ mode: "push", url: "http://10.0.0.5:8100" })).toBe("http://10.0.0.5:8100");
    expect(agentUrlText({ mode: "pull", url: "" })).toBe(PULL_URL_TEXT);
    expect(PULL_URL_TEXT).toContain("pull mode: the agent calls the server");
  });
  it("warns in the list only when heartbeats fail", () => {
    const { rerender } = render(<HeartbeatWarning agent={{ heartbeat_error: "", heartbeat_error_since: null }} />);
    expect(screen.queryByTestId("heartbeat-warning")).toBeNull();
    rerender(<HeartbeatWarning agent={{ heartbeat_error: ERROR, heartbeat_error_since: SINCE }} />);
    const warning = screen.getByTestId("heartbeat-warning");
    expect(warning).toHaveTextContent("Heartbeat error since");
    expect(warning).toHaveTextContent("[Errno 111] Connection refused");
    expect(warning.getAttribute("title")).toContain(ERROR);
  });
  it("shows the error and since when in the details panel", () => {
    const { rerender } = render(<HeartbeatAlert agent={{ heartbeat_error: "", heartbeat_error_since: null }} />);
    expect(screen.queryByRole("region", { name: "Heartbeat error" })).toBeNull();
    rerender(<HeartbeatAlert agent={{ heartbeat_error: "no heartbeat for 15 s", heartbeat_error_since: SINCE }} />);
    const alert = screen.getByRole("region", { name: "Heartbeat error" });
    expect(within(alert).getByText("no heartbeat for 15 s")).toBeInTheDocument();
    expect(alert).toHaveTextContent(`since ${new Date(SINCE).toLocaleString()}`);
  });
  it("leaves out since when the server does not know it", () => {
    render(<HeartbeatAlert agent={{ heartbeat_error: "no heartbeat for 15 s", heartbeat_error_since: null }} />);
    expect(screen.getByRole("region", { name: "Heartbeat error" })).not.toHaveTextContent("since");
  });
});
