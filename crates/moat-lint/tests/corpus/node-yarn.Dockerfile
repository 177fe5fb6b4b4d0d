FROM node:18-alpine as deps
WORKDIR /app
COPY package.json yarn.lock ./
RUN yarn install --frozen-lockfile
FROM deps AS build
COPY . .
RUN yarn build && npm install -g serve
FROM node:18-alpine
WORKDIR /app
COPY --from=build /app/dist ./dist
RUN npm install serve@14.2.1 --global
USER node
CMD ["serve", "-s", "dist"]
