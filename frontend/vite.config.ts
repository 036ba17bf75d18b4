/// <reference types="vitest" />
import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

const server = process.env.RUCKUS_SERVER ?? "http://127.0.0.1:8000";

// Built assets are served by Django (whitenoise) under STATIC_URL; index.html itself is served at "/".
export default defineConfig(({ command }) => ({
  base: command === "build" ? "/static/" : "/",
  plugins: [react()],
  build: { outDir: "dist", emptyOutDir: true, chunkSizeWarningLimit: 1500 },
  server: {
    port: 5173,
    proxy: {
      "/api": { target: server, changeOrigin: false },
      "/api-auth": { target: server, changeOrigin: false },
      "/admin": { target: server, changeOrigin: false },
      "/static/admin": { target: server, changeOrigin: false },
      "/static/rest_framework": { target: server, changeOrigin: false },
      "/ws": { target: server, ws: true, changeOrigin: false },
    },
  },
  test: {
    environment: "jsdom",
    setupFiles: ["./src/test/setup.ts"],
    css: false,
    include: ["src/**/*.test.{ts,tsx}"],
  },
}));
