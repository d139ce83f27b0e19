# syntax=docker/dockerfile:1

# ---- build: compile TypeScript with the dev dependencies ----
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# The workspace's manifest, so npm ci links it (the demo's typed client is built beside the broker).
COPY packages/client/package.json ./packages/client/
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY packages/client ./packages/client
COPY src ./src
RUN npm run build

# ---- deps: production dependencies only ----
FROM node:20-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
COPY packages/client/package.json ./packages/client/
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

# ---- run: slim image, non-root, only dist/ and production dependencies ----
FROM node:20-bookworm-slim AS run
# A 16 MB young generation instead of V8's 32 MB: about 15 MB less RSS under load at the same
# throughput (npm run bench measures the broker both ways). `npm start` gets the same through .npmrc.
ENV NODE_ENV=production \
    NODE_OPTIONS=--max-semi-space-size=8 \
    HOST=0.0.0.0 \
    PORT=3000 \
    INTERNAL_PORT=3001
WORKDIR /app
COPY --from=deps --chown=node:node /app/node_modules ./node_modules
COPY --from=build --chown=node:node /app/dist ./dist
COPY --chown=node:node package.json ./
# The image's built-in unprivileged user (uid 1000); the broker needs no privilege.
USER node
EXPOSE 3000 3001
# Slim images carry no curl: Node itself asks /healthz (the process only, never Redis).
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# node directly, never npm: npm does not pass SIGTERM on to its child (graceful shutdown).
CMD ["node", "dist/main.js"]
