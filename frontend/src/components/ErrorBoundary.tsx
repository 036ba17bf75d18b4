import { Component, type ErrorInfo, type ReactNode } from "react";
import { ErrorBox } from "./ui";

interface State { error: Error | null }

/** Shows a page's rendering error instead of a blank screen (reset when the route changes). */
export class ErrorBoundary extends Component<{ children: ReactNode; resetKey: string }, State> {
  state: State = { error: null };

  static getDerivedStateFromError(error: Error): State {
    return { error };
  }

  componentDidUpdate(prev: { resetKey: string }) {
    if (prev.resetKey !== this.props.resetKey && this.state.error) this.setState({ error: null });
  }

  componentDidCatch(error: Error, info: ErrorInfo) {
    console.error(error, info.componentStack);
  }

  render() {
    if (this.state.error) return <ErrorBox title="This page failed to render" error={this.state.error} />;
    return this.props.children;
  }
}
