# One image for both processes: `node apps/api/dist/main.js` (default) or `node apps/worker/dist/main.js`.
FROM node:20-bookworm-slim
WORKDIR /app
# Dev dependencies are needed: npm ci builds the workspaces (SWC) and generates the Prisma client.
ENV TURBO_TELEMETRY_DISABLED=1
COPY . .
RUN npm ci --no-audit --no-fund
EXPOSE 8080
CMD ["node", "apps/api/dist/main.js"]
