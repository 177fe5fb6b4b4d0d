# escape=`
FROM mcr.microsoft.com/windows/servercore:ltsc2022

SHELL ["powershell", "-Command", "$ErrorActionPreference = 'Stop'; $ProgressPreference = 'SilentlyContinue';"]

ENV APP_HOME C:\app
WORKDIR C:\app

RUN Invoke-WebRequest -Uri https://example.org/tool.zip -OutFile tool.zip; `
    Expand-Archive tool.zip -DestinationPath C:\tools; `
    Remove-Item tool.zip -Force

COPY app\ C:\app\
RUN setx /M PATH $($Env:PATH + ';C:\tools')
USER ContainerUser
CMD ["C:\\app\\server.exe"]
