FROM maven:3.9-eclipse-temurin-21 AS build
WORKDIR /workspace/app
COPY pom.xml .
COPY src src
RUN --mount=type=cache,target=/root/.m2 mvn -B -q package -DskipTests
RUN mkdir -p target/dependency && (cd target/dependency; jar -xf ../*.jar)

FROM eclipse-temurin:21-jre-jammy
VOLUME /tmp
ARG DEPENDENCY=/workspace/app/target/dependency
COPY --from=build ${DEPENDENCY}/BOOT-INF/lib /app/lib
COPY --from=build ${DEPENDENCY}/META-INF /app/META-INF
COPY --from=build ${DEPENDENCY}/BOOT-INF/classes /app
RUN groupadd --gid 10001 spring && useradd --uid 10001 --gid spring --no-log-init spring
USER spring:spring
HEALTHCHECK --interval=30s --timeout=3s CMD ["java", "-cp", "app:app/lib/*", "hello.Health"]
ENTRYPOINT ["java","-cp","app:app/lib/*","hello.Application"]
