# One image for every role: the command picks api, worker or all.
FROM node:20-slim
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json drizzle.config.ts ./
COPY drizzle ./drizzle
COPY src ./src
# Not root: the engine needs no privilege. .data is where embedded PGlite lives when DATABASE_URL is
# unset; tsx's compile cache goes to /tmp.
RUN mkdir -p .data && chown node:node .data
USER node
EXPOSE 3000
HEALTHCHECK --interval=10s --timeout=3s --retries=5 CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/healthz').then(r=>process.exit(r.ok?0:1)).catch(()=>process.exit(1))"
# Node itself, not npx/npm: npm runs a command through `sh -c`, and dash (Debian's sh) neither execs
# it nor passes SIGTERM on, so `docker stop` would signal a shell while the engine kept serving.
# tsx is loaded as a hook. Node as PID 1 reaps no zombies: run with --init (compose: init: true).
CMD ["node", "--import", "tsx", "src/main.ts", "all"]
