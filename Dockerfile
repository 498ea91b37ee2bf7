# One image for both processes: `node apps/api/dist/main.js` (default) or `node apps/worker/dist/main.js`.
FROM node:20-bookworm-slim
WORKDIR /app
# bubblewrap: the jail uploads are parsed in (packages/jail); docker-compose.yml allows its namespaces.
RUN apt-get update && apt-get install -y --no-install-recommends bubblewrap && rm -rf /var/lib/apt/lists/*
# Dev dependencies are needed: npm ci builds the workspaces (SWC) and generates the Prisma client.
ENV TURBO_TELEMETRY_DISABLED=1
COPY . .
RUN npm ci --no-audit --no-fund
EXPOSE 8080
CMD ["node", "apps/api/dist/main.js"]
