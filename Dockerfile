# syntax=docker/dockerfile:1
# Build stage: full dev dependencies to compile TypeScript, then prune to production deps.
# Node 24 (LTS, supported until 2028); the package itself keeps supporting Node 20 (engines, CI).
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
COPY gen ./gen
COPY client ./client
RUN npm run build && npm prune --omit=dev

# Runtime stage: compiled JS, production node_modules, and the .proto files reflection serves.
FROM node:24-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# The client SDK and its demo page, for `--demo true` (/demo).
COPY --from=build /app/client/package.json ./client/package.json
COPY --from=build /app/client/dist ./client/dist
COPY --from=build /app/client/demo ./client/demo
COPY gen/openapi.json ./gen/openapi.json
COPY proto ./proto
COPY third_party ./third_party
# The admin page's static files (served at /admin when --admin-key is set).
COPY admin ./admin
USER node
# WebSocket, HTTP (REST bridge, health, metrics), gRPC
EXPOSE 8812 8912 9912
COPY deploy/docker/healthcheck.mjs ./deploy/docker/healthcheck.mjs
# /healthz on the node's HTTP port as the node parses it (--http-port argument, env or --config file).
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s CMD ["node", "deploy/docker/healthcheck.mjs"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "dist/src/cli.js", "serve"]
