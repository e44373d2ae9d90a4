# ferry: one image for every process (node, receiver, broker, CLI). TypeScript runs through tsx.
FROM node:20-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force
COPY bin ./bin
COPY store ./store
COPY shipper ./shipper
COPY receiver ./receiver
COPY broker ./broker
COPY ops ./ops
COPY tsconfig.json ./
ENTRYPOINT ["node", "bin/ferry.mjs"]
