<?xml version="1.0" encoding="UTF-8"?>
<!--
  Wharf's viewer for failed-request trace files (frNNNNNN.xml): a browser applies it through the
  file's xml-stylesheet instruction. It shows the request's summary (the failedRequest
  attributes), the warnings and errors, and every event with its data, in the spirit of IIS's
  Failed Request Tracing viewer. Written for Wharf; XSLT 1.0, no script.
-->
<xsl:stylesheet version="1.0"
    xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
    xmlns:ev="http://schemas.microsoft.com/win/2004/08/events/event"
    xmlns:freb="http://schemas.microsoft.com/win/2006/06/iis/freb"
    exclude-result-prefixes="ev freb">

  <xsl:output method="html" encoding="UTF-8" indent="yes" doctype-system="about:legacy-compat"/>

  <xsl:template match="/failedRequest">
    <html lang="en">
      <head>
        <meta charset="UTF-8"/>
        <title>Request trace: <xsl:value-of select="@statusCode"/> for <xsl:value-of select="@url"/></title>
        <style>
          body { font: 13px/1.4 system-ui, "Segoe UI", sans-serif; margin: 0; color: #1b1b1b; background: #fafafa; }
          header { background: #25466b; color: #fff; padding: 14px 20px; }
          header h1 { font-size: 18px; margin: 0 0 4px; font-weight: 600; }
          header .url { font-family: ui-monospace, Consolas, monospace; word-break: break-all; }
          main { padding: 16px 20px; }
          h2 { font-size: 15px; margin: 22px 0 8px; color: #25466b; }
          table { border-collapse: collapse; background: #fff; width: 100%; }
          th, td { border: 1px solid #d5dbe3; padding: 4px 8px; text-align: left; vertical-align: top; }
          th { background: #eef2f7; font-weight: 600; }
          table.summary { width: auto; min-width: 50%; }
          table.summary th { width: 13em; }
          td.num { text-align: right; font-variant-numeric: tabular-nums; }
          .data { margin: 0; padding: 0; list-style: none; font-family: ui-monospace, Consolas, monospace; font-size: 12px; white-space: pre-wrap; word-break: break-all; }
          .data b { font-weight: 600; color: #44546a; }
          .data i { color: #6a7685; }
          tr.level-1 td, tr.level-2 td { background: #fde7e9; }
          tr.level-3 td { background: #fff4ce; }
          .opcode { font-weight: 600; }
          .none { color: #6a7685; font-style: italic; }
        </style>
      </head>
      <body>
        <header>
          <h1>Failed request: <span id="status"><xsl:value-of select="@statusCode"/></span> (<xsl:value-of select="@failureReason"/>)</h1>
          <div class="url" id="url"><xsl:value-of select="@verb"/><xsl:text> </xsl:text><xsl:value-of select="@url"/></div>
        </header>
        <main>
          <h2>Request summary</h2>
          <table class="summary" id="summary">
            <tr><th>URL</th><td><xsl:value-of select="@url"/></td></tr>
            <tr><th>Verb</th><td><xsl:value-of select="@verb"/></td></tr>
            <tr><th>Site id</th><td><xsl:value-of select="@siteId"/></td></tr>
            <tr><th>Application pool</th><td><xsl:value-of select="@appPoolId"/></td></tr>
            <tr><th>Process id</th><td><xsl:value-of select="@processId"/></td></tr>
            <tr><th>Authentication</th><td><xsl:value-of select="@authenticationType"/></td></tr>
            <tr><th>User</th><td><xsl:value-of select="@userName"/></td></tr>
            <tr><th>Failure reason</th><td><xsl:value-of select="@failureReason"/></td></tr>
            <tr><th>Status code</th><td><xsl:value-of select="@statusCode"/></td></tr>
            <tr><th>Trigger status code</th><td><xsl:value-of select="@triggerStatusCode"/></td></tr>
            <tr><th>Time taken</th><td><xsl:value-of select="@timeTaken"/> ms</td></tr>
            <tr><th>Activity id</th><td><xsl:value-of select="@activityId"/></td></tr>
            <tr><th>Events</th><td><xsl:value-of select="count(ev:Event)"/></td></tr>
          </table>

          <h2>Errors and warnings</h2>
          <xsl:choose>
            <xsl:when test="ev:Event[ev:System/ev:Level &gt; 0 and ev:System/ev:Level &lt;= 3]">
              <table id="warnings">
                <tr><th>#</th><th>Severity</th><th>Event</th><th>Module</th><th>Data</th></tr>
                <xsl:for-each select="ev:Event">
                  <xsl:if test="ev:System/ev:Level &gt; 0 and ev:System/ev:Level &lt;= 3">
                    <xsl:call-template name="row"><xsl:with-param name="position" select="position()"/><xsl:with-param name="brief" select="true()"/></xsl:call-template>
                  </xsl:if>
                </xsl:for-each>
              </table>
            </xsl:when>
            <xsl:otherwise><p class="none">No event of level Warning or above.</p></xsl:otherwise>
          </xsl:choose>

          <h2>All events</h2>
          <table id="events">
            <tr><th>#</th><th>Time (UTC)</th><th>Severity</th><th>Area</th><th>Event</th><th>Data</th></tr>
            <xsl:for-each select="ev:Event">
              <xsl:call-template name="row"><xsl:with-param name="position" select="position()"/><xsl:with-param name="brief" select="false()"/></xsl:call-template>
            </xsl:for-each>
          </table>
        </main>
      </body>
    </html>
  </xsl:template>

  <xsl:template name="row">
    <xsl:param name="position"/>
    <xsl:param name="brief"/>
    <tr class="level-{ev:System/ev:Level}">
      <td class="num"><xsl:value-of select="$position"/></td>
      <xsl:if test="not($brief)">
        <td><xsl:value-of select="substring(ev:System/ev:TimeCreated/@SystemTime, 12, 12)"/></td>
      </xsl:if>
      <td><xsl:value-of select="ev:RenderingInfo/ev:Level"/></td>
      <xsl:choose>
        <xsl:when test="$brief">
          <td class="opcode"><xsl:value-of select="ev:RenderingInfo/ev:Opcode"/></td>
          <td><xsl:value-of select="ev:EventData/ev:Data[@Name='ModuleName']"/></td>
        </xsl:when>
        <xsl:otherwise>
          <td>
            <xsl:choose>
              <xsl:when test="ev:RenderingInfo/ev:Keywords/ev:Keyword"><xsl:value-of select="ev:RenderingInfo/ev:Keywords/ev:Keyword"/></xsl:when>
              <xsl:otherwise>General</xsl:otherwise>
            </xsl:choose>
          </td>
          <td class="opcode"><xsl:value-of select="ev:RenderingInfo/ev:Opcode"/></td>
        </xsl:otherwise>
      </xsl:choose>
      <td>
        <ul class="data">
          <xsl:for-each select="ev:EventData/ev:Data[@Name != 'ContextId']">
            <xsl:variable name="name" select="@Name"/>
            <li>
              <b><xsl:value-of select="@Name"/></b>: <xsl:value-of select="."/>
              <xsl:for-each select="../../ev:RenderingInfo/freb:Description[@Data = $name]">
                <xsl:text> </xsl:text><i>(<xsl:value-of select="."/>)</i>
              </xsl:for-each>
            </li>
          </xsl:for-each>
        </ul>
      </td>
    </tr>
  </xsl:template>
</xsl:stylesheet>
