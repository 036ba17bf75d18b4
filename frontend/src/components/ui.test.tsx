import { describe, expect, it, vi } from "vitest";
import { fireEvent, render, screen } from "@testing-library/react";
import { ApiError } from "../api/errors";
import { ErrorBox, Field, ProgressBar, StatusBadge } from "./ui";

describe("ui components", () => {
  it("shows the API's message in the error box and retries", () => {
    const retry = vi.fn();
    render(<ErrorBox error={new ApiError(409, { detail: "job already finished" }, "409")} onRetry={retry} />);
    expect(screen.getByRole("alert")).toHaveTextContent("job already finished");
    fireEvent.click(screen.getByText("Try again"));
    expect(retry).toHaveBeenCalledOnce();
  });
  it("renders field errors next to the field", () => {
    render(<Field label="Seed" errors={["must be >= 0"]}><input /></Field>);
    expect(screen.getByText("must be >= 0")).toBeInTheDocument();
  });
  it("renders status and progress", () => {
    render(<><StatusBadge status="partially_failed" /><ProgressBar fraction={0.5} label="run 1/2" /></>);
    expect(screen.getByText("partially failed")).toBeInTheDocument();
    expect(screen.getByRole("progressbar")).toHaveAttribute("aria-valuenow", "50");
  });
});
