FROM centos
MAINTAINER Jane Doe <jane@example.com>
RUN yum install -y httpd php && yum clean all
RUN yum install epel-release
ADD https://example.org/install.sh /tmp/install.sh
ADD config /etc/httpd/conf.d/
RUN curl -sSL https://get.example.org | bash
RUN sudo chmod -R 777 /var/www
ENV DB_PASSWORD=supersecret AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE
ARG GITHUB_TOKEN
COPY id_rsa /root/.ssh/id_rsa
COPY .env /app/.env
EXPOSE 22 80
RUN cd /var/www && git clone https://example.org/site.git
CMD service httpd start && tail -f /var/log/httpd/access_log
