FROM php:8.3-apache
RUN a2enmod rewrite headers; \
    apt-get update; \
    apt-get install -y --no-install-recommends libzip-dev libpng-dev; \
    docker-php-ext-install -j "$(nproc)" zip gd pdo_mysql; \
    rm -rf /var/lib/apt/lists/*
COPY --chown=www-data:www-data . /var/www/html/
RUN { \
		echo 'opcache.memory_consumption=128'; \
		echo 'opcache.interned_strings_buffer=8'; \
	} > /usr/local/etc/php/conf.d/opcache-recommended.ini
ENV APACHE_DOCUMENT_ROOT /var/www/html/public
RUN sed -ri -e 's!/var/www/html!${APACHE_DOCUMENT_ROOT}!g' /etc/apache2/sites-available/*.conf
USER www-data
